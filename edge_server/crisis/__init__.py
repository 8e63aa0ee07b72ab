"""What a site exchanges with its C-NSP in a crisis besides its readiness: bulletins for residents
(hub -> site, signed, shown on the kiosk page) and emergency reports by staff (site -> hub, first
in the outbox, acknowledged back). See docs/bulletins-and-reports.md."""
