"""FHIR R4 at the domain's edges: resources in (`inbound`), decisions out (`outbound`), PlanDefinitions."""
