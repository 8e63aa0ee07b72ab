"""The HTTP API and the site page of the edge service (FastAPI).

`app.create_app(service)` builds the app; one router per resource lives in this package and is
listed in app.ROUTERS. `deps.ServiceDep` gives a route the running Service.
"""
