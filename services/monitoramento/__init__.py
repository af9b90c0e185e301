"""monitoramento: the health of every service, the broker and the databases, in one place."""
