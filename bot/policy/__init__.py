"""The brand's rules as data (schema, loading) and the pure decide() function."""
