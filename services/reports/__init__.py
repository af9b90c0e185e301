"""reports: aggregated views of orders and customers, built from events."""
