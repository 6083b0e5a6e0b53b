"""Web API (``/api``) of the running switch: :func:`control.web.api.build_api` over the
services, served by :class:`control.web.server.WebServer` in the switch's event loop."""
