"""The Salesforce emulator: the API syncd's connector talks to, served on loopback
(``server``), with its store, schema and control API beside it."""
