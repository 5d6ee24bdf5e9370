"""The monthly assessment: the regulator's figures from the archive (:mod:`.figures`)."""
