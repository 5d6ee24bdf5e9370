"""Route permits: the contract, compiled routes and where they cross provincial borders."""
