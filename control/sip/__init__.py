"""Sans-I/O SIP: messages, transactions, dialogs, authentication."""
