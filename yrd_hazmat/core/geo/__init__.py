"""Geography: jurisdiction lookup, GCJ-02 conversion and demo corridors."""
