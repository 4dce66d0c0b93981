"""Run results: the results.json store and JUnit XML."""
