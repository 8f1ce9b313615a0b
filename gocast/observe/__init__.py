"""What GoCast tells operators: logs, Prometheus metrics, webhooks, the stats history, GeoIP."""
