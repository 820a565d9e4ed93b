package cn.gridsync.demo.ui

import android.graphics.BitmapFactory
import androidx.compose.foundation.Image
import androidx.compose.foundation.background
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.size
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.produceState
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.ImageBitmap
import androidx.compose.ui.graphics.asImageBitmap
import androidx.compose.ui.layout.ContentScale
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.Dp
import androidx.compose.ui.unit.dp
import cn.gridsync.demo.R
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/** A stored photo, read from the engine by hash and decoded off the main thread. */
@Composable
fun PhotoThumb(hash: String, load: suspend (String) -> ByteArray?, size: Dp = 96.dp) {
    val bitmap by produceState<ImageBitmap?>(null, hash) {
        value = load(hash)?.let { bytes ->
            withContext(Dispatchers.Default) { BitmapFactory.decodeByteArray(bytes, 0, bytes.size)?.asImageBitmap() }
        }
    }
    val image = bitmap
    if (image != null) {
        Image(image, contentDescription = null, contentScale = ContentScale.Crop, modifier = Modifier.size(size))
    } else {
        Box(
            Modifier.size(size).background(MaterialTheme.colorScheme.surfaceVariant),
            contentAlignment = Alignment.Center,
        ) {
            Text(stringResource(R.string.detail_photo_missing), style = MaterialTheme.typography.labelSmall)
        }
    }
}
