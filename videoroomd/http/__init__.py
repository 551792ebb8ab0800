"""The one listening port: HTTP/1.1 for pages, /healthz, /metrics, admin; WebSocket upgrades."""
