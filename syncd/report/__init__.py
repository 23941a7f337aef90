"""The funnel, speed-to-lead and closed-loop report, as text, JSON and an HTML page."""
