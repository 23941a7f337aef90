"""``syncd demo``: both emulators, sample people, companies and a deal; the funnel worked
in Salesforce and closed back into HubSpot; then the report, as ``syncd report`` prints it.

Every fact the demo states is read back from the emulators after the cycle, not assumed:
a step that went wrong shows up as a wrong number and a ✗.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from syncd import registry
from syncd.config.load import load_config
from syncd.config.settings import Config, SlaPropertySettings, SlaSettings, SlaTaskSettings
from syncd.daemon.budget import Budgets
from syncd.harness import sandbox
from syncd.report import view as report_view
from syncd.report.build import build, read_history
from syncd.report.model import Period
from syncd.state.store import Store
from syncd.state.tables import first_touches, links
from syncd.sync.cycle import CycleReport
from syncd.sync.engine import Engine

SLA_SECONDS = 7.2
"""The demo's speed-to-lead SLA (0.002 hours), so that one runs out while it is watched."""
SHORT = {"hubspot": "HS", "salesforce": "SF"}
"""How the cycle tables name the systems (a legend says so once)."""
COUNTERS = ("read", "created", "updated")


def run_demo(directory: Path, console: Console) -> list[str]:
    """Run the demo, printing as it goes; return the facts that did not hold (none: all well)."""
    console.rule("syncd demo")
    with sandbox.start(directory, copy_ca=True) as running:
        hubspot, salesforce = running.emulators["hubspot"], running.emulators["salesforce"]
        sandbox.seed_sample_deals(running.emulators)
        console.print(f"HubSpot emulator at {hubspot.url}, Salesforce emulator at {salesforce.url}")
        console.print(
            "Sample data in HubSpot: 3 contacts, 2 companies and 1 deal (Ada's, with her "
            "company);\nin Salesforce: 2 leads, 1 contact and 2 accounts. Alan Turing is on "
            "both sides (his\nemails differ in case), and so is Analytical Engines (domain "
            "analyticalengines.com in\nHubSpot, Website https://www.analyticalengines.com/ in "
            "Salesforce): neither may be\nduplicated. In the tables HS is HubSpot, SF is "
            "Salesforce, and · is none."
        )
        config = load_config(running.config_path)
        store = Store.open(config.store_url)
        marketing = registry.connector(config, "hubspot")
        crm = registry.connector(config, "salesforce")
        engine = Engine.for_config(config, store, marketing, crm)
        budgets = Budgets.for_config(store, config)
        scene = _Scene(console, engine, hubspot, salesforce, budgets)
        try:
            _first_sync(scene)
            _edits(scene)
            _funnel(scene)
            _follow_up(scene)
            _deals(scene)
            _people(scene)
            counts = store.counts()
            console.print(
                f"\nStore: {counts['links']} links (people, companies, deals), "
                f"{counts['stage_history']} stage transitions recorded, "
                f"{counts['dead_letters']} dead letters."
            )
            _report(console, config, store, sla_hours=scene.engine.sla_hours)
        finally:
            marketing.close()
            crm.close()
            store.close()
    if scene.failed:
        console.print(f"[red]✗ {len(scene.failed)} of {scene.checks} facts did not hold.[/red]")
    else:
        console.print(f"[green]✓ All {scene.checks} facts checked above held.[/green]")
    return scene.failed


@dataclass
class _Scene:
    """The demo's world: where it prints, the engine, both emulators, and a cycle count."""

    console: Console
    engine: Engine
    hubspot: Any
    salesforce: Any
    budgets: Budgets
    """Where each cycle's API calls are counted, as ``syncd once`` counts its own."""
    cycles: int = 0
    checks: int = 0
    failed: list[str] = field(default_factory=list)

    def cycle(self, title: str) -> CycleReport:
        self.cycles += 1
        with self.budgets.metered([self.engine.marketing, self.engine.crm]):
            report = self.engine.run_once()
        self.console.print(_cycle_table(f"Cycle {self.cycles}: {title}", report))
        return report

    def say(self, text: str) -> None:
        self.console.print(f"\n[bold]{escape(text)}[/bold]")

    def check(self, holds: bool, text: str) -> None:
        """State a fact read back from the systems; ✗ when it is not what should be."""
        self.checks += 1
        mark = "[green]✓[/green]" if holds else "[red]✗[/red]"
        self.console.print(f"  {mark} {escape(text)}")
        if not holds:
            self.failed.append(text)

    # What the emulators hold, as each system's user sees it.

    def contacts(self, email: str) -> list[dict[str, Any]]:
        return [p for p in _hs(self.hubspot, "contacts") if _lower(p.get("email")) == email]

    def contact(self, email: str) -> dict[str, Any]:
        found = self.contacts(email)
        return found[0] if found else {}

    def sf(self, obj: str, **wanted: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.salesforce.records(obj, include_deleted=False)
            if all(_lower(r.get(k)) == v.lower() for k, v in wanted.items())
        ]

    def deal(self, name: str) -> dict[str, Any]:
        found = [d for d in _hs(self.hubspot, "deals") if d.get("dealname") == name]
        return found[0] if found else {}


def _hs(hubspot: Any, object_type: str) -> list[dict[str, Any]]:
    return [{**o["properties"], "id": str(o["id"])} for o in hubspot.objects(object_type)]


def _lower(value: Any) -> str:
    return str(value or "").lower()


def _table(title: str, *columns: str) -> Table:
    """A compact table: numbers (columns named with a leading "#") right-aligned."""
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False
    )
    for column in columns:
        numeric = column.startswith("#")
        table.add_column(column.lstrip("#"), justify="right" if numeric else "left")
    return table


def _cycle_table(title: str, report: CycleReport) -> Table:
    """One row per object; what was read from, created in and updated in each system."""
    table = _table(
        title,
        "object",
        *(f"#{what} {short}" for what in COUNTERS for short in SHORT.values()),
        "#rejected",
    )
    for obj, part in (report.objects or {"": report}).items():
        table.add_row(
            obj,
            *(
                str(getattr(part, counter)[system] or "·")
                for counter in COUNTERS
                for system in SHORT
            ),
            str(sum(part.rejected.values()) or "·"),
        )
    notes = {
        "conflicts": report.conflicts,
        "unchanged": report.unchanged,
        "duplicates": report.duplicates,
        "skipped": report.skipped,
        "converted leads": report.converted,
    }
    if report.activities:
        notes |= {"sales activities read": report.activities, "first touches": report.touches}
    if report.sla_breaches or report.sla_tasks or report.sla_flags or report.sla_cleared:
        notes |= {
            "SLA breaches": report.sla_breaches,
            "SLA tasks written": report.sla_tasks,
            "flags set": report.sla_flags,
            "flags cleared": report.sla_cleared,
        }
    table.caption = " · ".join(f"{name} {count}" for name, count in notes.items())
    table.caption_justify = "left"
    return table


def _first_sync(scene: _Scene) -> None:
    scene.say(
        "The first cycle links what matches (by email, by domain) and creates the rest, both "
        "ways.\nLook for: no duplicate Alan or Analytical Engines; Ada's deal in Salesforce."
    )
    scene.cycle("first sync, both ways")
    companies = _hs(scene.hubspot, "companies")
    engines = [c for c in companies if c.get("domain") == "analyticalengines.com"]
    accounts = scene.sf("Account")
    matched = scene.sf("Account", Website="https://www.analyticalengines.com/")
    scene.check(
        len(engines) == 1 and len(matched) == 1,
        f"Analytical Engines matched by domain: {len(engines)} HubSpot company, "
        f"{len(matched)} Salesforce account",
    )
    name = engines[0]["name"] if engines else None
    scene.check(
        name == "Analytical Engines Ltd",
        f"both sides had named it, a conflict the CRM wins: HubSpot now says {name!r}",
    )
    scene.check(
        len(companies) == 3 and len(accounts) == 3,
        f"companies: {len(companies)} in HubSpot, {len(accounts)} accounts in Salesforce "
        "(US Navy created in Salesforce, Bletchley Park in HubSpot)",
    )
    scene.check(
        len(scene.contacts("alan@example.com")) == 1
        and len(scene.sf("Lead", Email="alan@example.com")) == 1,
        f"Alan: {len(scene.contacts('alan@example.com'))} HubSpot contact, "
        f"{len(scene.sf('Lead', Email='alan@example.com'))} Salesforce lead",
    )
    opportunity = _one(scene.sf("Opportunity", Name="Difference Engine No. 2"))
    account = _one(scene.sf("Account", Name="Analytical Engines Ltd"))
    scene.check(
        bool(opportunity) and opportunity.get("AccountId") == account.get("Id"),
        f"Ada's HubSpot deal is now a Salesforce opportunity: stage "
        f"{opportunity.get('StageName')!r}, amount {_amount(opportunity.get('Amount'))}, "
        f"account {account.get('Name')!r}",
    )
    scene.console.print(
        "    (Ada is a Salesforce lead, and contact roles name contacts only: the opportunity "
        "has none yet,\n    but syncd keeps her as the deal's person for the closed loop below.)"
    )


def _one(records: list[dict[str, Any]]) -> dict[str, Any]:
    return records[0] if len(records) == 1 else {}


def _edits(scene: _Scene) -> None:
    ada = scene.contact("ada@example.com")
    scene.hubspot.update_contact(ada["id"], {"jobtitle": "Chief Scientist"})
    katherine = _one(scene.sf("Lead", Email="katherine@example.com"))
    scene.salesforce.update(
        "Lead", katherine["Id"], {"Status": "Qualified", "Phone": "+1 757 864 1000"}
    )
    scene.say("Marketing edits Ada's title in HubSpot; sales qualifies Katherine in Salesforce.")
    scene.cycle("edits on each side")
    scene.check(
        _one(scene.sf("Lead", Email="ada@example.com")).get("Title") == "Chief Scientist",
        f"Ada's Salesforce title: {_one(scene.sf('Lead', Email='ada@example.com')).get('Title')}",
    )
    hs = scene.contact("katherine@example.com")
    scene.check(
        hs.get("lifecyclestage") == "salesqualifiedlead" and hs.get("phone") == "+1 757 864 1000",
        f"Katherine in HubSpot: {hs.get('lifecyclestage')} / {hs.get('hs_lead_status')}, "
        f"phone {hs.get('phone')}",
    )
    scene.say("Nobody edits anything; syncd reads its own writes back and must not echo them.")
    report = scene.cycle("nothing changed, nothing echoed")
    scene.check(
        not report.created and not report.updated,
        f"records written: {sum(report.created.values()) + sum(report.updated.values())}",
    )


def _funnel(scene: _Scene) -> None:
    scene.console.rule("Sales works the funnel")
    katherine = scene.contact("katherine@example.com")
    ids = sandbox.convert_sample_lead(scene.salesforce)
    scene.say(
        "Sales converts Katherine's lead: Salesforce makes a contact, an account (NASA) "
        "and an opportunity.\nLook for: the same HubSpot contact (no second one), now an "
        "opportunity, and the account and opportunity as HubSpot company and deal."
    )
    scene.cycle("a converted lead")
    found = scene.contacts("katherine@example.com")
    now = found[0] if found else {}
    scene.check(
        len(found) == 1 and now.get("id") == katherine["id"],
        f"HubSpot contacts with katherine@example.com: {len(found)} "
        f"(id {now.get('id')}; before the conversion: {katherine['id']})",
    )
    scene.check(
        now.get("syncd_salesforce_id") == ids["contactId"],
        f"it now points at the new Salesforce contact: {now.get('syncd_salesforce_id')} "
        f"(the contact: {ids['contactId']})",
    )
    scene.check(
        now.get("lifecyclestage") == "opportunity",
        f"Katherine's HubSpot lifecycle stage: {now.get('lifecyclestage')}",
    )
    nasa = [c for c in _hs(scene.hubspot, "companies") if c.get("name") == "NASA"]
    deal = scene.deal("NASA trajectory analysis")
    contacts = scene.hubspot.associations("deals", deal["id"], "contacts") if deal else []
    companies = scene.hubspot.associations("deals", deal["id"], "companies") if deal else []
    scene.check(
        len(nasa) == 1 and bool(deal),
        f"HubSpot companies named NASA: {len(nasa)}; deals named 'NASA trajectory analysis': "
        f"{1 if deal else 0}, stage {deal.get('dealstage')}",
    )
    nasa_id = nasa[0]["id"] if nasa else None
    scene.check(
        contacts == [katherine["id"]] and companies == [nasa_id],
        f"the deal's contacts {contacts} (Katherine is {katherine['id']}), "
        f"companies {companies} (NASA is {nasa_id})",
    )

    won, lost = ids["opportunityId"], _one(scene.sf("Opportunity", Name="Difference Engine No. 2"))
    sandbox.close_sample_deals(scene.salesforce, str(won), lost["Id"])
    scene.say(
        "Sales wins NASA (120,000) and loses Ada's Difference Engine (reason: No Budget).\n"
        "Look for: both deals closed in HubSpot, Katherine a customer, Ada recycled to nurture "
        "(lifecycle lead, lead status BAD_TIMING)."
    )
    scene.cycle("deals won and lost: the loop closes")
    scene.console.print("  (the deal row counts the writes to the people the closed loop moved)")
    deal = scene.deal("NASA trajectory analysis")
    scene.check(
        deal.get("dealstage") == "closedwon" and deal.get("amount") == "120000",
        f"HubSpot deal 'NASA trajectory analysis': {deal.get('dealstage')}, "
        f"amount {deal.get('amount')}",
    )
    katherine = scene.contact("katherine@example.com")
    scene.check(
        katherine.get("lifecyclestage") == "customer",
        f"Katherine's HubSpot lifecycle stage: {katherine.get('lifecyclestage')}",
    )
    deal = scene.deal("Difference Engine No. 2")
    scene.check(
        deal.get("dealstage") == "closedlost" and deal.get("closed_lost_reason") == "No Budget",
        f"HubSpot deal 'Difference Engine No. 2': {deal.get('dealstage')}, "
        f"reason {deal.get('closed_lost_reason')}",
    )
    ada = scene.contact("ada@example.com")
    ada_lead = _one(scene.sf("Lead", Email="ada@example.com"))
    scene.check(
        (ada.get("lifecyclestage"), ada.get("hs_lead_status")) == ("lead", "BAD_TIMING")
        and ada_lead.get("Status") == "Nurture",
        f"Ada: HubSpot {ada.get('lifecyclestage')} / {ada.get('hs_lead_status')}, "
        f"Salesforce lead {ada_lead.get('Status')}",
    )

    grace = _one(scene.sf("Lead", Email="grace@example.com"))
    scene.salesforce.update("Lead", grace["Id"], {"Status": "Nurture"})
    scene.say(
        "Sales sends Grace's lead back to marketing (Status Nurture).\n"
        "Look for: Grace recycled in HubSpot (lead status BAD_TIMING)."
    )
    scene.cycle("a lead recycled to nurture")
    grace = scene.contact("grace@example.com")
    scene.check(
        (grace.get("lifecyclestage"), grace.get("hs_lead_status")) == ("lead", "BAD_TIMING"),
        f"Grace in HubSpot: {grace.get('lifecyclestage')} / {grace.get('hs_lead_status')}",
    )


def _follow_up(scene: _Scene) -> None:
    """Speed to lead from what sales did: one hand-off called in time, one left waiting
    past the SLA (a task for its owner in Salesforce, a flag in HubSpot), then called late
    (the flag cleared, the task left to the rep)."""
    scene.console.rule("Two hand-offs: one called in time, one left waiting")
    engine = scene.engine
    engine.sla = SlaSettings(
        crm_task=SlaTaskSettings(enabled=True),
        marketing_property=SlaPropertySettings(enabled=True),
    )
    engine.sla_hours = SLA_SECONDS / 3600
    subject = engine.sla.crm_task.subject
    for props in sandbox.SAMPLE_HANDOFFS:
        scene.hubspot.add_contact(props)
    scene.say(
        "Marketing hands Mary (score 72, Webinar) and Dorothy (score 45, Trade Show) to sales\n"
        f"(HubSpot lifecycle MQL). The agreed SLA is {engine.sla_hours * 3600:g} seconds here "
        "(24 hours as shipped), with the\nwrite-back turned on (`sla:` in syncd.yaml, off as "
        "shipped). Look for: two Salesforce leads."
    )
    scene.cycle("two hand-offs")
    mary = _one(scene.sf("Lead", Email="mary@example.com"))
    dorothy = _one(scene.sf("Lead", Email="dorothy@example.com"))
    scene.check(
        bool(mary) and bool(dorothy),
        f"Salesforce leads: Mary {mary.get('Id')}, Dorothy {dorothy.get('Id')}",
    )
    rep = sandbox.sales_rep(scene.salesforce)
    rep_name = f"{rep['FirstName']} {rep['LastName']}"
    for lead in (mary, dorothy):
        if lead:
            scene.salesforce.update("Lead", lead["Id"], {"OwnerId": rep["Id"]})
    if mary:
        sandbox.log_call(scene.salesforce, mary["Id"], rep["Id"])
    scene.say(
        f"Salesforce assigns both leads to {rep_name}, who calls Mary at once (a logged call)\n"
        f"and leaves Dorothy waiting; {SLA_SECONDS:g} seconds pass. Look for: Mary's first "
        f"touch timed;\na task for {rep_name} on Dorothy's lead, and Dorothy flagged in "
        "HubSpot (syncd_sla_breached)."
    )
    time.sleep(SLA_SECONDS + 0.5)
    scene.cycle("the SLA runs out for Dorothy")
    touched = _touches(scene)
    mary_touch = touched.get("mary@example.com")
    scene.check(
        mary_touch is not None and mary_touch[1] <= SLA_SECONDS,
        "Mary's first touch: "
        + (
            f"a {mary_touch[0]}, {mary_touch[1]:.1f} s after her hand-off, within the SLA"
            if mary_touch
            else "none"
        ),
    )
    reminders = _reminders(scene, dorothy.get("Id"), subject)
    scene.check(
        len(reminders) == 1 and reminders[0].get("OwnerId") == rep["Id"],
        f"tasks {subject!r} on Dorothy's lead: {len(reminders)}, for "
        + ", ".join(str(t.get("OwnerId")) for t in reminders)
        + f" ({rep_name} is {rep['Id']}); on Mary's: "
        f"{len(_reminders(scene, mary.get('Id'), subject))}",
    )
    flags = (
        scene.contact("dorothy@example.com").get("syncd_sla_breached"),
        scene.contact("mary@example.com").get("syncd_sla_breached"),
    )
    scene.check(
        flags[0] == "true" and not flags[1],
        f"HubSpot syncd_sla_breached: Dorothy {flags[0]!r}, Mary {flags[1]!r}",
    )

    if dorothy:
        sandbox.log_call(scene.salesforce, dorothy["Id"], rep["Id"])
    scene.say(
        f"{rep_name} finally calls Dorothy. Look for: her flag cleared in HubSpot, still one "
        "task (it is the rep's to close)."
    )
    scene.cycle("Dorothy's late call")
    flag = scene.contact("dorothy@example.com").get("syncd_sla_breached")
    late = _touches(scene).get("dorothy@example.com")
    scene.check(
        not flag
        and len(_reminders(scene, dorothy.get("Id"), subject)) == 1
        and late is not None
        and late[1] > SLA_SECONDS,
        f"Dorothy: flag {flag!r}, tasks {len(_reminders(scene, dorothy.get('Id'), subject))}, "
        + (f"first touch {late[1]:.1f} s after her hand-off" if late else "no first touch"),
    )


def _touches(scene: _Scene) -> dict[str, tuple[str, float]]:
    """The first touches syncd kept, by email: (channel, seconds after the hand-off)."""
    with scene.engine.store.engine.connect() as connection:
        rows = connection.execute(
            select(
                links.c.email_key,
                first_touches.c.channel,
                first_touches.c.handoff_at,
                first_touches.c.touched_at,
            ).join(links, links.c.id == first_touches.c.link_id)
        )
        return {
            str(r.email_key): (r.channel, (r.touched_at - r.handoff_at).total_seconds())
            for r in rows
        }


def _reminders(scene: _Scene, who: Any, subject: str) -> list[dict[str, Any]]:
    return [
        t
        for t in scene.salesforce.records("Task", include_deleted=False)
        if who and t.get("WhoId") == who and t.get("Subject") == subject
    ]


def _amount(value: Any) -> str:
    return "" if value is None else f"{value:g}"


def _deals(scene: _Scene) -> None:
    table = _table(
        "Deals as each system now shows them",
        "deal",
        "HubSpot stage",
        "Salesforce stage",
        "#amount HS",
        "#amount SF",
        "lost reason HS",
    )
    opportunities = _partners(scene.sf("Opportunity"))
    for deal in _hs(scene.hubspot, "deals"):
        opportunity = _partner_of(deal, opportunities)
        table.add_row(
            escape(deal.get("dealname") or ""),
            deal.get("dealstage") or "",
            opportunity.get("StageName") or "-",
            deal.get("amount") or "",
            _amount(opportunity.get("Amount")),
            escape(deal.get("closed_lost_reason") or ""),
        )
    scene.console.print()
    scene.console.print(table)


def _people(scene: _Scene) -> None:
    table = _table(
        "People as each system now shows them",
        "email in HubSpot",
        "HubSpot lifecycle / status",
        "Salesforce",
        "title",
        "phone",
    )
    leads = [r for r in scene.sf("Lead") if not r.get("IsConverted")]
    people = _partners([*leads, *scene.sf("Contact")])
    for props in _hs(scene.hubspot, "contacts"):
        partner = _partner_of(props, people)
        kind = partner.get("attributes", {}).get("type", "")
        stage = [props.get("lifecyclestage"), props.get("hs_lead_status")]
        table.add_row(
            escape(str(props.get("email") or "")),
            " / ".join(str(value) for value in stage if value) or "-",
            escape(f"{kind} {partner.get('Status') or ''}".strip() or "-"),
            escape(str(props.get("jobtitle") or "")),
            escape(str(partner.get("Phone") or props.get("phone") or "")),
        )
    scene.console.print()
    scene.console.print(table)


def _partners(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Salesforce records by their own id and by the HubSpot id they name."""
    found = {str(r["Id"]): r for r in records}
    found.update(
        {f"hs:{r['Syncd_HubSpot_Id__c']}": r for r in records if r.get("Syncd_HubSpot_Id__c")}
    )
    return found


def _partner_of(props: dict[str, Any], partners: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The Salesforce partner of a HubSpot record: the one it names, or the one naming it
    (HubSpot learns its partner's id with the next update syncd makes to it)."""
    named = partners.get(props.get("syncd_salesforce_id") or "")
    return named or partners.get(f"hs:{props['id']}") or {}


def _report(console: Console, config: Config, store: Store, *, sla_hours: float) -> None:
    console.rule("syncd report, on the demo's store")
    console.print(
        "The same tables `syncd report` prints, computed from the stage history syncd "
        f"recorded above (the last {config.syncd.report.days} days).\nEverything above "
        "happened within seconds, so the times it measures are about 0 hours, and the SLA\n"
        f"is the demo's {sla_hours:g} hours ({sla_hours * 3600:g} seconds)."
    )
    until = datetime.now(UTC)
    period = Period(until - timedelta(days=config.syncd.report.days), until)
    result = build(
        read_history(store, period),
        period,
        stages=config.stages,
        crm=config.syncd.crm,
        settings=config.syncd.report.model_copy(update={"speed_to_lead_sla_hours": sla_hours}),
    )
    report_view.print_report(console, result)
