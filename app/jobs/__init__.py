"""Jobs: the execution entity (up to two per run), its status, timeline, logs and the queue."""
