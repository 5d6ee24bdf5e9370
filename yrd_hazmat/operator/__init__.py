"""What operators run from the command line: publishing zones, incident actions and the
ledger (``yrd-hazmat zones-publish``, ``respond``, ``ledger``)."""
