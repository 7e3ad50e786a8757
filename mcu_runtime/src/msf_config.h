/* msf_config.h - build configuration of the msfopt runtime.  This default accepts fused blocks
 * of up to 64 layers; `msfopt codegen` writes its own copy next to the generated model with the
 * plan's longest block, so the executor's stack arrays are no larger than the plan needs. */
#ifndef MSF_CONFIG_H
#define MSF_CONFIG_H
#endif
