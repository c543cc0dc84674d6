"""The coordinators' worklist: search Carepath's Tasks, and move them through the FHIR Task state machine."""
