"""The API's routes, one module per area, each exporting ``router`` (listed in ``api.app.ROUTE_MODULES``)."""
