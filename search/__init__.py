"""Index sync, hybrid retrieval, generative answers and their evaluation."""
