"""Test EHR launcher (SEKMET) shared by the test suite and local scripts."""
