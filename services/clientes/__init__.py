"""clientes: customer CRUD, and the enrichment of orders with their customer."""
