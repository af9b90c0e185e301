"""pedidos: takes orders over REST and publishes them as events through an outbox."""
