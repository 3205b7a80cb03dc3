"""What happened, as data: the records, the event log that writes them, and the tail that reads them back."""
