"""ECS-shaped output above the placement core: identity (ARNs and ids) and the Describe* views.

The core knows instances as rows and tasks by the ids it is given; this package names them as ECS does
(``identity``), renders DescribeTasks / DescribeContainerInstances / RunTask failures (``describe``), and
words the service events and stop reasons that quote those ids (``events``).
"""
