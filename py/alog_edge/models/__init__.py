"""Model definitions: dataclass configs plus small torch modules."""
