"""Starting and stopping the processes: one machine (`concierge run`, tests) and the cluster
behind nginx (`concierge cluster`)."""
