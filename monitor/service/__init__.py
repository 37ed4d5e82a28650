"""The HTTP service of ``monitor up``: FastAPI app, routers under ``/api/v1/``, metrics and lifecycle.

:func:`monitor.service.app.create_app` builds the app around a :class:`~monitor.service.context.ServiceContext`
(settings, the process's one :class:`~monitor.storage.Storage`, the running components), so tests can
serve the very same app on a free port without the rest of ``monitor up``.
"""
