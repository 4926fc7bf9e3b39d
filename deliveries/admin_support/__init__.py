"""What the message list and page need beyond a plain ModelAdmin at a million rows: counts that do not scan the
table, a date range filter, exact search, the CSV export and the page's own views (timeline, cancel, retry)."""
