"""``tsi-live --serve``: a small HTTP server in the runtime's process showing what it sees (the
annotated video, top-k, events, stream states), with ``/metrics``, ``/healthz`` and ``/events``.
:func:`runtime.serve.start.start_serving` puts it together; docs/serve.md says how it is used."""
