"""The dashboard: one function-based view per page and per action.

Views parse, authorize (rollouts.roles) and call one selector or service;
they render a page, or for htmx one named partial of the same template.
"""
