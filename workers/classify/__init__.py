"""Classification worker: category, risk flags, repeat detection and priority (分类定级)."""
