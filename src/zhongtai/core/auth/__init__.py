"""Who is calling: staff users with roles, channel API keys with scopes, and store scope."""
