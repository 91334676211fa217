"""Names of the topics and services several packages share (one place; see README's topic table).

Node-local names stay relative in each node (resolved in the node's namespace); these are the
robot-wide ones that cross packages.
"""
DATA_UPDATES = '/sync/data_updates'          # retail_interfaces/DataUpdate, transient local
INTERACTION_EVENTS = '/sync/interaction_events'   # retail_interfaces/InteractionEvent (observers)
RECORD_EVENTS = '/sync/record_events'        # retail_interfaces/RecordEvents (stored, acknowledged)
DIAGNOSTICS = '/diagnostics'                 # diagnostic_msgs/DiagnosticArray
