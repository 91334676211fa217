"""The robot's topic, service and action names that cross a node (one place; README's topic table).

Every node uses these constants rather than spelling names out, so a publisher and its
subscribers cannot drift apart. Names private to one node stay relative in that node (resolved in
its namespace, e.g. `plan` of /navigation/guide is /navigation/plan). A launch file may still remap
any of them (`--ros-args -r /cmd_vel:=/base/cmd_vel`).
"""

# Standard robot interfaces (REP-105 frames; geometry_msgs, nav_msgs, diagnostic_msgs)
CMD_VEL = '/cmd_vel'  # geometry_msgs/Twist: collision monitor -> base driver
ODOM = '/odom'  # nav_msgs/Odometry: base driver -> guide
MAP = '/map'  # nav_msgs/OccupancyGrid (transient local): guide
DIAGNOSTICS = '/diagnostics'  # diagnostic_msgs/DiagnosticArray -> health

# Perception
CUSTOMER_EVENTS = '/perception/customer_events'  # retail_interfaces/CustomerEvent: faces -> manager
PEOPLE = '/perception/people'  # geometry_msgs/PoseArray: faces -> guide
ENROLL_FACE = '/perception/enroll_face'  # retail_interfaces/EnrollFace (service)
LIST_MEMBERS = '/perception/list_members'  # retail_interfaces/ListMembers (service): faces -> ui
DELETE_MEMBER = '/perception/delete_member'  # retail_interfaces/DeleteMember (service): ui -> faces

# Dialogue
UTTERANCES = '/dialogue/utterances'  # retail_interfaces/Utterance: asr -> manager
REPLIES = '/dialogue/replies'  # retail_interfaces/RobotReply: manager -> tts, ui
SPEECH_STATUS = '/dialogue/speech_status'  # tts -> asr (robot speaking)
TTS_STOP = '/dialogue/tts_stop'  # asr -> tts (barge-in)
STAFF_REQUESTS = '/dialogue/staff_requests'  # retail_interfaces/StaffRequest: manager -> staff console
LISTEN_CONTEXT = '/dialogue/listen_context'  # retail_interfaces/ListenContext (latched): manager -> asr (language)

TF = '/tf'  # tf2_msgs/TFMessage: odom -> base_link, map -> odom
TF_STATIC = '/tf_static'  # tf2_msgs/TFMessage (transient local): sensor mounts
SCAN = '/scan'  # sensor_msgs/LaserScan: lidar -> localisation, monitor, guide

# Navigation
GUIDE_TO = '/navigation/guide_to'  # retail_interfaces/GuideTo (action)
TOUR = '/navigation/tour'  # retail_interfaces/Tour (action): manager -> guide
SKIP_TOUR_STOP = '/navigation/skip_tour_stop'  # retail_interfaces/SkipTourStop (service): manager -> guide
SAFETY = '/navigation/safety'  # retail_interfaces/BaseSafety (latched): base -> guide, manager
GUIDE_CMD_VEL = '/navigation/guide/cmd_vel'  # geometry_msgs/Twist: guide -> collision monitor (-> CMD_VEL)
POSE = '/navigation/pose'  # geometry_msgs/PoseWithCovarianceStamped (map): localisation
LOCALIZATION_STATE = '/navigation/localization_state'  # std_msgs/String (transient local): localisation -> guide
PARTICLE_CLOUD = '/navigation/particle_cloud'  # geometry_msgs/PoseArray (map, transient local): localisation checkpoints (Foxglove, replay)
LOCALIZATION_UPDATES = '/navigation/localization_updates'  # geometry_msgs/PoseStamped (odom): per filter update, its scan's stamp and odometry (replay)
RELOCALISE = '/navigation/relocalise'  # std_srvs/Trigger: global relocalisation
INITIAL_POSE = '/initialpose'  # geometry_msgs/PoseWithCovarianceStamped (RViz)
ARRIVALS = '/navigation/arrivals'  # retail_interfaces/PlaceArrival: guide -> manager

# Recommendation
RECOMMEND = '/recommendation/recommend'  # retail_interfaces/Recommend (service)

# Sync
DATA_UPDATES = '/sync/data_updates'  # retail_interfaces/DataUpdate, transient local
INTERACTION_EVENTS = '/sync/interaction_events'  # retail_interfaces/InteractionEvent (observers only)
RECORD_EVENTS = '/sync/record_events'  # retail_interfaces/RecordEvents (stored, acknowledged)

# UI
STAFF_SESSION = '/ui/staff_session'  # std_msgs/Bool (transient local): a staff member is logged in on the console
