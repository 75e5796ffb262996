"""Real peers the tests talk to: implementations nobody on this project wrote."""
