/*
 * A grid worker's day through the C API, against a real `gridsync serve`:
 * enroll, open an encrypted engine, load the directory, set the server, ingest a
 * photo, report a case with it, sync, and check the error codes an app relies on.
 *
 *   day SERVER_URL ENROLLMENT_CODE FOLDER PHOTO.jpg
 *
 * Prints its figures as `key=value` lines (tests/c_program.rs reads `case_id` and
 * `photo_hash` to look for the case on a dispatcher's device), exits 0 when every
 * check passed and 1 at the first that did not.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gridsync.h"

static const char *TITLE = "楼上管道漏水";

/* Stop at the first failed check, saying which and why. */
static void fail(const char *what, gridsync_status status) {
    char *message = gridsync_last_error_message();
    fprintf(stderr, "day.c: %s: %s (%s)\n", what, gridsync_status_name((int)status),
            message ? message : "no message");
    gridsync_string_free(message);
    exit(1);
}

#define CHECK(call)                                                                \
    do {                                                                           \
        gridsync_status status_ = (call);                                          \
        if (status_ != GRIDSYNC_STATUS_OK) fail(#call, status_);                   \
    } while (0)

/* A call that must fail with `expected`, leaving a message. */
#define EXPECT_STATUS(call, expected)                                              \
    do {                                                                           \
        gridsync_status status_ = (call);                                          \
        if (status_ != (expected)) {                                               \
            fprintf(stderr, "day.c: %s: expected %s, got %s\n", #call,            \
                    gridsync_status_name((int)(expected)),                         \
                    gridsync_status_name((int)status_));                           \
            exit(1);                                                               \
        }                                                                          \
        char *message_ = gridsync_last_error_message();                            \
        if (message_ == NULL) {                                                    \
            fprintf(stderr, "day.c: %s: no error message\n", #call);              \
            exit(1);                                                               \
        }                                                                          \
        printf("%s=%s\n", #expected, message_);                                    \
        gridsync_string_free(message_);                                            \
    } while (0)

static void require(int condition, const char *what) {
    if (!condition) {
        fprintf(stderr, "day.c: check failed: %s\n", what);
        exit(1);
    }
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    require(f != NULL, "the photo file opens");
    require(fseek(f, 0, SEEK_END) == 0, "the photo file seeks");
    long size = ftell(f);
    require(size > 0, "the photo file is not empty");
    rewind(f);
    unsigned char *bytes = malloc((size_t)size);
    require(bytes != NULL, "memory for the photo");
    require(fread(bytes, 1, (size_t)size, f) == (size_t)size, "the photo file reads");
    fclose(f);
    *len = (size_t)size;
    return bytes;
}

/* The device's 32-byte root key. An app makes it once and keeps it in the
 * platform keystore; here it is random and lives for the run. */
static void random_key(unsigned char key[32]) {
    FILE *f = fopen("/dev/urandom", "rb");
    require(f != NULL, "/dev/urandom opens");
    require(fread(key, 1, 32, f) == 32, "32 random bytes");
    fclose(f);
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

struct progress {
    int calls;
    int saw_push;
    int saw_photos;
};

/* Runs on one of the library's threads while gridsync_engine_sync blocks. */
static void on_progress(void *context, const char *phase, uint64_t items, uint64_t bytes,
                        uint64_t remaining) {
    struct progress *p = context;
    (void)items;
    (void)bytes;
    (void)remaining;
    p->calls++;
    if (strcmp(phase, "push") == 0) p->saw_push = 1;
    if (strcmp(phase, "photos") == 0) p->saw_photos = 1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s SERVER_URL ENROLLMENT_CODE FOLDER PHOTO.jpg\n", argv[0]);
        return 2;
    }
    const char *url = argv[1], *code = argv[2], *folder = argv[3], *photo_path = argv[4];
    char db_path[4096];
    require(snprintf(db_path, sizeof db_path, "%s/worker.db", folder) < (int)sizeof db_path,
            "the database path fits");

    /* Enrollment: a new device id, the one-time code, then user, token, directory. */
    char *device_id = NULL, *user = NULL, *token = NULL, *directory = NULL;
    CHECK(gridsync_new_device_id(&device_id));
    CHECK(gridsync_enroll(url, code, device_id, "day.c", NULL, false, &user, &token,
                          &directory));
    printf("user=%s\n", user);

    unsigned char key[32];
    random_key(key);
    gridsync_engine *engine = NULL;
    CHECK(gridsync_engine_open(db_path, user, device_id, key, sizeof key, &engine));
    CHECK(gridsync_engine_load_directory(engine, directory));
    CHECK(gridsync_engine_set_server(engine, url, token));

    /* A photo from the camera, then a case that shows it. */
    size_t photo_len = 0;
    unsigned char *photo = read_file(photo_path, &photo_len);
    char *hash = NULL, *thumb = NULL;
    uint32_t width = 0, height = 0;
    CHECK(gridsync_engine_ingest_photo(engine, photo, photo_len, "IMG_0001.jpg", &hash, &thumb,
                                       &width, &height));
    free(photo);
    printf("photo_hash=%s\nphoto_size=%" PRIu32 "x%" PRIu32 "\n", hash, width, height);
    require(width > 0 && height > 0, "the photo has a size");

    char case_json[2048];
    int n = snprintf(case_json, sizeof case_json,
                     "{\"title\":\"%s\",\"description\":\"3号楼楼上漏水\","
                     "\"category\":\"livelihood\",\"subcategory\":\"livelihood.water_leak\","
                     "\"severity\":\"high\",\"lat\":30.27,\"lon\":120.15,"
                     "\"address\":\"望湖小区3号楼\",\"photos\":[\"%s\"]}",
                     TITLE, hash);
    require(n > 0 && n < (int)sizeof case_json, "the case JSON fits");
    char *case_id = NULL;
    CHECK(gridsync_engine_report_case(engine, case_json, &case_id));
    printf("case_id=%s\n", case_id);

    char *case_text = NULL;
    CHECK(gridsync_engine_get_case(engine, case_id, &case_text));
    require(strstr(case_text, TITLE) != NULL, "the case has its title");
    require(strstr(case_text, hash) != NULL, "the case lists its photo");
    require(strstr(case_text, "\"status\":\"reported\"") != NULL, "the case is reported");
    gridsync_string_free(case_text);

    char *list = NULL;
    CHECK(gridsync_engine_list_cases(engine, "{\"text\":\"漏水\"}", &list));
    require(strstr(list, case_id) != NULL, "a search for 漏水 finds the case");
    gridsync_string_free(list);

    uint64_t pending = 0;
    CHECK(gridsync_engine_pending_changes(engine, &pending));
    printf("pending_before=%" PRIu64 "\n", pending);
    require(pending >= 1, "the report waits to sync");

    /* Sync, told how it goes. */
    struct progress progress = {0, 0, 0};
    gridsync_sync_summary summary;
    CHECK(gridsync_engine_sync(engine, on_progress, &progress, &summary));
    CHECK(gridsync_engine_pending_changes(engine, &pending));
    printf("pushed=%" PRIu64 "\nrejected=%" PRIu64 "\npulled=%" PRIu64
           "\nphotos_uploaded=%" PRIu64 "\nprogress_calls=%d\npending_after=%" PRIu64 "\n",
           summary.pushed, summary.rejected, summary.pulled, summary.photos_uploaded,
           progress.calls, pending);
    require(summary.pushed >= 1, "the report was pushed");
    require(summary.rejected == 0, "nothing was refused");
    require(summary.photos_uploaded >= 1, "the photo was uploaded");
    require(progress.saw_push && progress.saw_photos, "progress told of push and photos");
    require(pending == 0, "nothing waits after the sync");

    /* The stored photo comes back as a JPEG. */
    unsigned char *stored = NULL;
    size_t stored_len = 0;
    CHECK(gridsync_engine_photo_bytes(engine, hash, &stored, &stored_len));
    require(stored_len > 2 && stored[0] == 0xFF && stored[1] == 0xD8, "the photo is a JPEG");
    gridsync_bytes_free(stored, stored_len);

    /* The typed errors an app acts on. */
    EXPECT_STATUS(gridsync_engine_report_case(engine, NULL, &case_text),
                  GRIDSYNC_STATUS_NULL_ARGUMENT);
    require(case_text == NULL, "no result after a failure");
    EXPECT_STATUS(gridsync_engine_report_case(engine, "{\"title\":\"x\"}", &case_text),
                  GRIDSYNC_STATUS_INVALID_INPUT);
    EXPECT_STATUS(gridsync_engine_get_case(engine, "\xff\xfe", &case_text),
                  GRIDSYNC_STATUS_INVALID_UTF8);
    CHECK(gridsync_engine_close(engine));
    EXPECT_STATUS(gridsync_engine_pending_changes(engine, &pending), GRIDSYNC_STATUS_CLOSED);
    gridsync_engine_free(engine);
    engine = NULL;

    unsigned char wrong[32];
    memcpy(wrong, key, sizeof wrong);
    wrong[0] ^= 0x01;
    gridsync_engine *other = NULL;
    EXPECT_STATUS(gridsync_engine_open(db_path, user, device_id, wrong, sizeof wrong, &other),
                  GRIDSYNC_STATUS_WRONG_KEY);
    require(other == NULL, "no engine under a wrong key");
    EXPECT_STATUS(gridsync_engine_open(db_path, user, device_id, key, 16, &other),
                  GRIDSYNC_STATUS_INVALID_INPUT);
    EXPECT_STATUS(gridsync_engine_open(NULL, user, device_id, key, sizeof key, &other),
                  GRIDSYNC_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(gridsync_engine_open(db_path, user, device_id, key, sizeof key, NULL),
                  GRIDSYNC_STATUS_NULL_ARGUMENT);

    /* The right key opens the same case; then the worker leaves and wipes. */
    CHECK(gridsync_engine_open(db_path, user, device_id, key, sizeof key, &engine));
    CHECK(gridsync_engine_get_case(engine, case_id, &case_text));
    require(strstr(case_text, TITLE) != NULL, "the case reads after reopening");
    gridsync_string_free(case_text);
    CHECK(gridsync_engine_wipe(engine));
    require(!file_exists(db_path), "the wipe removed the database");
    EXPECT_STATUS(gridsync_engine_pending_changes(engine, &pending), GRIDSYNC_STATUS_CLOSED);
    gridsync_engine_free(engine);

    gridsync_string_free(case_id);
    gridsync_string_free(hash);
    gridsync_string_free(thumb);
    gridsync_string_free(directory);
    gridsync_string_free(token);
    gridsync_string_free(user);
    gridsync_string_free(device_id);
    printf("day.c: all checks passed\n");
    return 0;
}
