"""What happens: the services endpoints call. No HTTP here, and no settings: plain arguments."""
