"""Bulk registration from an Excel sheet (K-1); the interface is `lifecycle.bulk.sheets`."""
