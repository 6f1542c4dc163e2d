"""mlpatron: an ML experiment crowdfunding platform."""
