"""Push: waking Ping and Sync-Wait requests when collections change."""
