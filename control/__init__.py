"""vosmedia control plane: SIP, routing, accounts, billing, CDRs and management (pure Python)."""
