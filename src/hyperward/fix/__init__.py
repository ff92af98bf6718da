"""`hyperward fix`: the change that fixes each failing result, as a reviewable bash script or
Ansible task file; applied only when asked (cli_fix.py), then proved by a rescan (apply.py).

plan.py holds the neutral edit plan and the fixer registry; families/ one module per kind of fix
(configuration keys, sshd, file modes, kernel boot and module options, system files, domain XML);
helper.py the edits themselves, embedded in the bash form; bash.py and ansible.py the renderers."""
