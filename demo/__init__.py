"""The demo: dicomhub with sample studies, and a viewer page on a second origin."""
