"""General guards behind ``near_miss``: argument order around a relation, opposites (WordNet and
affixes), references to something outside the text, and text in scripts the embedder cannot read."""
