"""Campaign services, split by topic: campaigns, scheduling, completion, bulk sends, contacts, segments, imports."""
