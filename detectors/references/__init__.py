"""References: registered reference data per model (versions, kinds, rows), their column profiles, and
reading reference files (Parquet, CSV) into ClickHouse."""
