"""carrier-lint: check the `carriers` of Ansible inventories without running Ansible.

The checks are the role's own (module_utils/vicireg_carriers.py, vicireg_fields.py, vicireg_grammar.py);
this package only reads the YAML, keeps track of where each value sits, and reports.
"""
