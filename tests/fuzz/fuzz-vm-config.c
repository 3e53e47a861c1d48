/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-vm-config: a VM description document (docs/vm-config.md) as keel-vmm --config, a
 * saved state's "config" section and keeld's API read it. Whatever the input, parsing must
 * not crash or leak, and a description that parses and passes vmdef_check must come back
 * unchanged through the writer: what keeld stores is what the worker runs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config/vmdef.h"

/* No command line and an empty one are the same VM. */
static const char *text(const char *s)
{
	return s ? s : "";
}

static void round_trip(const struct vm_def *def)
{
	json_object *doc = vmdef_to_json(def);
	struct vm_def again;
	char err[512];

	if (!doc)
		return;
	vmdef_init(&again);
	if (vmdef_apply_json(&again, doc, VMDEF_JSON_DOCUMENT, err, sizeof(err)) ||
	    vmdef_check(&again, err, sizeof(err)) || vmdef_hw_change(def, &again) ||
	    strcmp(def->name, again.name) || strcmp(def->uuid, again.uuid) ||
	    strcmp(text(def->kernel), text(again.kernel)) ||
	    strcmp(text(def->cmdline), text(again.cmdline)) ||
	    strcmp(text(def->initrd), text(again.initrd)) ||
	    strcmp(text(def->notes), text(again.notes)) ||
	    strcmp(text(def->nvram), text(again.nvram)) ||
	    strcmp(text(def->firmware_file), text(again.firmware_file)) ||
	    def->start_action != again.start_action || def->stop_action != again.stop_action)
		abort(); /* the writer and the parser disagree */
	vmdef_free(&again);
	json_object_put(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_tokener *tok;
	json_object *obj;
	struct vm_def def;
	char err[512];

	if (size > VMDEF_DOCUMENT_MAX)
		return 0;
	tok = json_tokener_new();
	if (!tok)
		return 0;
	obj = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	vmdef_init(&def);
	if (obj && !vmdef_apply_json(&def, obj, VMDEF_JSON_DOCUMENT, err, sizeof(err)) &&
	    !vmdef_check(&def, err, sizeof(err)))
		round_trip(&def);
	/* The same object as an API request onto an existing definition: must not crash. */
	if (obj && !vmdef_apply_json(&def, obj, VMDEF_JSON_REQUEST, err, sizeof(err)))
		(void)!vmdef_check(&def, err, sizeof(err));
	vmdef_free(&def);
	json_object_put(obj);
	json_tokener_free(tok);
	return 0;
}
