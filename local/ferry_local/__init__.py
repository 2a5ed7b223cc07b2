"""Ferry on one machine, for the demo and the end-to-end tests. TEST AND DEMO INFRASTRUCTURE."""
