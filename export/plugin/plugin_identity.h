// The plugin's identity, stated once: the C++ plugin includes this header and export/plugin_graph.py
// reads the three definitions from it (so keep each one a plain string literal on its own line).
#ifndef TSI_PLUGIN_IDENTITY_H
#define TSI_PLUGIN_IDENTITY_H

#define TSI_PLUGIN_NAME "SaliencyAttention"
#define TSI_PLUGIN_NAMESPACE "tsi"
#define TSI_PLUGIN_VERSION "1"

#endif // TSI_PLUGIN_IDENTITY_H
