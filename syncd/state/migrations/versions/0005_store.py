"""A cheaper store: a person's company as an indexed column of its base (the closed
loop's account-contacts rule looked it up with a LIKE over every person's fields).

Revision ID: 0005
Revises: 0004
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COMPANY_FIELD = "account"
BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("bases") as table:
        table.add_column(sa.Column("company_link", sa.String(64)))
        table.create_index("ix_bases_company", ["company_link"])
    connection = op.get_bind()
    bases = sa.table("bases", sa.column("link_id"), sa.column("fields"), sa.column("company_link"))
    links = sa.table("links", sa.column("id"), sa.column("object"))
    rows = connection.execute(
        sa.select(bases.c.link_id, bases.c.fields)
        .join(links, links.c.id == bases.c.link_id)
        .where(links.c.object == "person")
    ).all()
    found = []
    for link_id, fields in rows:
        value = json.loads(fields or "{}").get(COMPANY_FIELD)
        if value:
            found.append({"b_link": link_id, "b_company": str(value)[:64]})
    for start in range(0, len(found), BATCH):
        connection.execute(
            bases.update()
            .where(bases.c.link_id == sa.bindparam("b_link"))
            .values(company_link=sa.bindparam("b_company")),
            found[start : start + BATCH],
        )


def downgrade() -> None:
    with op.batch_alter_table("bases") as table:
        table.drop_index("ix_bases_company")
        table.drop_column("company_link")
